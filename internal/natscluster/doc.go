// Package natscluster describes VRSky's platform NATS cluster from the
// side of the roles that use it and the operator who runs it: the replica
// count every stream and KV bucket gets (one setting, applied where the
// roles open JetStream), the client options that ride through the loss of
// a node, and the configuration file of one node, as `vrsky nats-config`
// writes it.
//
// It never starts a server (internal/natsserver runs the embedded ones of
// `vrsky dev`) and never decides names of streams or buckets (the hot
// path's contract does).
package natscluster
