// Package auth owns Wharf's users: names, password hashes and SCRAM
// credentials, tags, RabbitMQ-style permissions per vhost, and the
// loopback-only restriction. It checks credentials (PLAIN-style passwords
// and the server side of SCRAM-SHA-256/512) and answers permission
// questions for the protocol adapters, which enforce them.
//
// Invariants:
//   - A user name is unique. No plain-text password is kept: a password
//     is stored as salt || SHA-256(salt || password) (RabbitMQ's
//     rabbit_password_hashing_sha256 layout, so hashes can be imported from
//     and exported to RabbitMQ definitions) and as a SCRAM credential per
//     mechanism (salt, iterations, StoredKey, ServerKey); comparisons are
//     constant-time.
//   - A loopback-only user authenticates only from a loopback address,
//     whatever its password or mechanism.
//   - A SCRAM exchange for an unknown user runs to its last step with a
//     salt that is stable per name, so it does not reveal which users
//     exist.
//   - Permissions: a user without an entry for a vhost may not use it; an
//     empty expression allows nothing; a new user has no permissions and
//     no tags, and changing a password keeps them.
//   - A store opened on a file (Open) writes every change to it, durably
//     (temporary file, fsync, rename, directory fsync), before the change
//     returns; a change whose write fails is undone in memory too. A new
//     file starts with guest/guest: loopback only, administrator, every
//     permission on vhost "/".
package auth
