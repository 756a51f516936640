//! Shared authentication mechanism: password hashing, access tokens and their keys, the bearer
//! security scheme with roles, and login throttling. The account endpoints that use it live in
//! `features/accounts`.

pub mod guard;
pub mod password;
pub mod throttle;
pub mod tokens;

pub use guard::BearerAuth;
pub use password::Passwords;
pub use throttle::LoginThrottle;
pub use tokens::{Claims, Role, TokenKeys};
