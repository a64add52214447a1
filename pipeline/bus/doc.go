// Package bus is the hub's durable message bus: Watermill's Publisher and
// Subscriber on NATS JetStream.
//
// By default Open starts a NATS server inside the process (reachable only
// from it, no port) with JetStream storing under Config.StoreDir: one binary,
// nothing to install. With Config.URL the same code uses an external NATS
// JetStream server or cluster, and hub replicas share durable consumers.
//
// # Layout on the server
//
// One stream (Config.Stream, file storage, limits retention for MaxAge)
// captures "<SubjectPrefix>.>"; topic "ledger.member" is subject
// "loyaltyhub.ledger.member". Each sync reads through its own durable
// consumer, named by the sync, filtered on its topic, created on first
// Subscribe and delivering the stream from its start. Because retention is by
// age and not by interest, a sync added later still finds the last MaxAge of
// history, and acks by one sync never remove a message another sync needs.
//
// # Why our own Publisher and Subscriber on nats.go, not watermill-nats's
//
// watermill-nats v2.1.3 offers two implementations; neither fits as is.
//
//   - pkg/jetstream (new JetStream API, marked beta) hands out one message per
//     subscription at a time (its Consume callback waits for the ack), its
//     built-in consumers are ephemeral or not durable (the grouped one is
//     dropped by the server 5 s after its last subscriber leaves),
//     ConfigureConsumer is not read, an undecodable message makes it
//     dereference a nil message, and it logs every message at Info.
//   - pkg/nats (legacy push consumers, recommended by its docs for production)
//     gets durable competing consumers and N handlers from config
//     (SubscribersCount, DurablePrefix, QueueGroupPrefix), but the server pushes
//     up to MaxAckPending messages into the client's buffer where their AckWait
//     runs while they wait for a free handler (slow sinks then cause
//     redeliveries while the first copy is still queued), capping that with
//     MaxAckPending = N is per consumer and so shared by all replicas, a held
//     message is given up after AckWaitTimeout with no "in progress" signal,
//     auto-provisioning makes one stream per topic, and it builds on the
//     nats.go API that nats.go itself calls legacy.
//   - Both publishers wait for each message's JetStream ack before sending the
//     next: one round trip per message.
//
// So the bus talks to nats.go's jetstream package directly (pull consumers,
// NATS's recommended consumer for work queues and horizontal scaling) and keeps
// watermill-nats's wire format (pkg/nats.NATSMarshaler: the message UUID in
// header "_watermill_message_uuid", each metadata entry in its own header), so
// watermill-nats tools read our stream. What that buys:
//
//   - Publish sends all messages of a call without waiting, then waits for
//     every JetStream ack: it returns only once each message is stored (written
//     to the file store; with replicas, by a quorum), at the cost of one round
//     trip per call instead of per message.
//   - A Subscriber pulls exactly as many messages as it has free handler slots
//     (inflight), so at most inflight messages are out per process and none
//     waits in a client buffer while its AckWait runs. Replicas using the same
//     consumer name pull from the same durable consumer: each message goes to
//     one of them. While a handler holds a message, the subscriber signals "in
//     progress" every AckWait/3; the server redelivers only when the holder is
//     gone.
//   - Ack is confirmed by the server before the slot is reused; Nack asks for
//     redelivery after an exponential delay (NakDelay..MaxNakDelay); deliveries
//     are unlimited (the pipeline's poison queue decides when to give up, using
//     metadata MetaDelivered).
//
// # Duplicates: the version guard, not Nats-Msg-Id
//
// The bus does not set JetStream's Nats-Msg-Id header on its own. Server-side
// dedup only covers a window (DedupWindow, default 2 minutes) and only
// messages with the same id on the same stream; the hub must survive
// duplicates outside it anyway (a source resending after an hour, a
// redelivery after a crash), which the state store's per-key version guard and
// upserts by external id do. Dedup by event id would also drop real messages
// silently: CloudEvents ids are unique per source, not across the sources that
// share this one stream, and replaying a dead-lettered event soon after it
// failed would be swallowed while Publish reports success. A publisher that
// wants the server to drop quick resends (the ingress for a source that
// retries) can set metadata "Nats-Msg-Id" itself, scoped as it sees fit (e.g.
// "<topic>/<source>/<id>"); the stream honours it within DedupWindow, and
// subscribers do not see that metadata.
//
// # Durability
//
// A message is acked to the publisher after the server has written it to its
// file store: it survives the process being killed (tested with SIGKILL). The
// embedded server fsyncs every 2 minutes; Config.SyncAlways fsyncs every
// message, for power loss. On a cluster, Replicas 3 keeps it on a quorum.
// Acks are durable the same way: after a restart, acked messages are not
// redelivered and unacked ones are.
package bus
