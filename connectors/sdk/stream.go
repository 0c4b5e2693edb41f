package sdk

import (
	"context"
	"io"
)

// StreamProducer is a Producer that can also write one message whose body
// it reads from a stream rather than from Message.Body: the hot path hands
// it claim-checked bodies straight from the blob store, so a large body is
// never held in memory whole.
//
// CanStream says whether it can for msg (not, for example, when a template
// must read the body). WriteStream has Write's contract for a batch of one;
// msg.Body is nil and body yields exactly size bytes. It must not keep body
// after returning.
type StreamProducer interface {
	Producer
	CanStream(msg Message) bool
	WriteStream(ctx context.Context, msg Message, body io.Reader, size int64) error
}
