//go:build !go1.27 || !goexperiment.jsonv2

package jsonbody

// Without encoding/json/jsontext there are no fast paths: Decode and Encode
// use encoding/json alone.

const fastPaths = false

func readObject([]byte) (map[string]any, bool) { return nil, false }

func write(any) ([]byte, bool) { return nil, false }

func writeSettled(map[string]any) ([]byte, bool) { return nil, false }
