//! Connection pools with Go's `database/sql` model (max open, max idle, lifetimes, DBStats).
