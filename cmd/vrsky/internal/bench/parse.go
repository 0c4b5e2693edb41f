package bench

import "bytes"

var seqField = []byte(`"seq":`)

// ParseSeq finds the top-level "seq" number in one line of the sink file
// without decoding the JSON: the bench writes the only "seq" key, and the
// other string fields of its bodies never contain that text. ok is false
// for a line with no "seq", a seq that is not a non-negative integer, or one
// that overflows int64.
func ParseSeq(line []byte) (seq int64, ok bool) {
	i := bytes.Index(line, seqField)
	if i < 0 {
		return 0, false
	}
	i += len(seqField)
	for i < len(line) && line[i] == ' ' {
		i++
	}
	start := i
	for ; i < len(line) && line[i] >= '0' && line[i] <= '9'; i++ {
		d := int64(line[i] - '0')
		if seq > (1<<63-1-d)/10 {
			return 0, false
		}
		seq = seq*10 + d
	}
	if i == start {
		return 0, false
	}
	// A number must end at a delimiter: a line cut short could otherwise
	// give a prefix of the real seq.
	if i == len(line) {
		return 0, false
	}
	switch line[i] {
	case ',', '}', ' ', '\r':
		return seq, true
	}
	return 0, false
}
