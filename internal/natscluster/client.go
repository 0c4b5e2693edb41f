package natscluster

import (
	"time"

	"github.com/nats-io/nats.go"
)

// Client reconnection settings: what a role does when the node it talks to
// goes away.
const (
	// ReconnectWait is the pause before trying the same server again; the
	// other servers of the list are tried at once.
	ReconnectWait = 250 * time.Millisecond
	// ReconnectJitter is added at random to ReconnectWait so that a
	// hundred clients of a lost node do not arrive at once.
	ReconnectJitter = 250 * time.Millisecond
	// PingInterval and MaxPingsOut bound how long a connection to a node
	// cut off from the network (no reset, just silence) looks alive:
	// about PingInterval × (MaxPingsOut + 1).
	PingInterval = 5 * time.Second
	MaxPingsOut  = 2
)

// ClientOptions are the options every VRSky connection to the platform
// NATS uses: name, reconnect without limit (a role never gives up on
// NATS), a short jittered wait, pings that notice a silent node, and a
// first connect that tries every URL of the list. The URL itself may be a
// comma-separated list of the cluster's nodes; the client also learns the
// others from the node it reaches.
func ClientOptions(name string) []nats.Option {
	return []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(ReconnectWait),
		nats.ReconnectJitter(ReconnectJitter, ReconnectJitter),
		nats.PingInterval(PingInterval),
		nats.MaxPingsOutstanding(MaxPingsOut),
	}
}
