//! WeCom server API client (gettoken, message/send, media/get, media/upload, update_template_card).
