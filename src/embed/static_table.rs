//! The in-process default: a static token-vector table distilled from a real model
//! (`kaitong distill`), loaded at start and on reload. Implemented on branch `embed`.
