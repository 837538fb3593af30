// Package auth owns Wharf's users: names, salted password hashes and the
// loopback-only restriction, and checks credentials for the protocol
// adapters. It keeps no plain-text password and compares hashes in
// constant time.
//
// Invariants: a user name is unique; a password is stored only as
// salt || SHA-256(salt || password) (RabbitMQ's rabbit_password_hashing_sha256
// layout, so hashes can be imported from and exported to RabbitMQ
// definitions); a loopback-only user authenticates only from a loopback
// address, whatever its password.
package auth
