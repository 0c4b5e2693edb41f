package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vrsky/vrsky/internal/natsauth"
)

// runNATSConfig prints the nats-server configuration block that makes a
// production NATS server trust the keys in -keys (created, mode 0600, when
// missing): the roles then run with VRSKY_NATS_KEYS_FILE pointing at the
// same file, and every tenant gets its own NATS account.
func runNATSConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nats-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keysFile := fs.String("keys", os.Getenv("VRSKY_NATS_KEYS_FILE"), "the platform's NATS keys file [VRSKY_NATS_KEYS_FILE]")
	jwtDir := fs.String("jwt-dir", "/data/jwt", "where the NATS server keeps account JWTs")
	out := fs.String("out", "", "write the configuration to this file instead of standard output")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *keysFile == "" {
		return fmt.Errorf("%w: vrsky nats-config -keys FILE", errUsage)
	}
	keys, err := natsauth.LoadOrCreateKeys(*keysFile)
	if err != nil {
		return err
	}
	conf, err := keys.ServerConfig(*jwtDir)
	if err != nil {
		return err
	}
	if *out != "" {
		// Account JWTs are signed claims, not secrets: the server may read
		// the file as another user.
		return os.WriteFile(*out, []byte(conf), 0o644)
	}
	_, err = io.WriteString(stdout, conf)
	return err
}
