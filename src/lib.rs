//! kaitong (开通): a WeCom chatbot that files value-added service requests.

pub mod catalog;
