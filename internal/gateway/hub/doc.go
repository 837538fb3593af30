// Package hub is the registry of the gateway's real-time sessions: which
// connections are open, under which client id, and in which groups. It
// fans frames out to one client (all of its connections), to a group, or
// to everyone, and tells group members who joins and leaves.
//
// The hub only queues frames: a Sender's Send never blocks, and a session
// whose outbox is full is closed by its own connection, not by the hub.
// A frame is encoded once by the caller and the same bytes are queued for
// every recipient.
//
// Invariants:
//   - A session is in a group's member set iff it joined and has neither
//     left nor been removed; presence is per client id: a client joins a
//     group when its first session does and leaves when its last one does,
//     and only those changes produce presence events.
//   - Every method is safe for concurrent use; Send is called under the
//     hub's read lock, so it must not call back into the hub.
package hub
