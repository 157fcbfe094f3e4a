//! An in-repo WeCom server API simulator for tests and `kaitong chat`.
