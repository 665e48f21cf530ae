//! Test fixtures shared by the unit tests of several stages, and golden data: nothing here is
//! compiled into the agent.

pub mod audit;
pub mod events;
pub mod layout;
pub mod pam;
