// Package sdk is the public contract between VRSky and its connectors: the
// message type, the four connector interfaces (Consumer, Converter, Filter,
// Producer), the Poller a consumer adds to run on a schedule, the Ingress a
// pushed-to consumer (a webhook, a CloudEvents receiver) implements instead
// of Consumer, with the IngressSink the platform hands it, and the
// StreamProducer a producer adds to take large bodies as streams, typed
// errors that say retryable or permanent, and the description a connector
// registers itself with.
//
// It holds contracts only. Connectors never ack, never retry in a loop and
// never talk to NATS: the hot path owns delivery, acks and retries, and
// decides from the errors a connector returns.
package sdk
