//! The deadlock and misuse detector (feature `deadlock-detection`).
