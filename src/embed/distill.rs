//! `kaitong distill`: builds the static table from an embedding server. Implemented on branch
//! `embed`.
