//! Stateful rules that decide whether an anomaly happened, from what the earlier stages built:
//! [`protect`] replays the kernel's fs.protected_* checks on a refused open or link (ANOM_LINK,
//! ANOM_CREAT); [`login`] holds the opt-in ANOM_LOGIN_* rules over PAM calls. The pipeline
//! consults them; they call no other stage.

pub mod login;
pub mod protect;
