//! The service catalog loaded from `dialogs/`.
