package bench

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNATSNodesOption(t *testing.T) {
	for _, n := range []int{0, 1, 3, 5} {
		c := Config{Binary: "vrsky", NATSNodes: n}
		require.NoError(t, c.applyDefaults(), n)
	}
	for _, n := range []int{-1, 2, 4, 7} {
		c := Config{Binary: "vrsky", NATSNodes: n}
		require.ErrorContains(t, c.applyDefaults(), "want 1, 3 or 5", n)
	}
	attached := Config{DataDir: "x", NATSNodes: 3}
	require.ErrorContains(t, attached.applyDefaults(), "an attached stack keeps its own")
	require.Equal(t, Durability, durabilityOf(0, false))
	require.Equal(t, Durability, durabilityOf(1, false))
	require.Equal(t, Durability+", 3 replicas", durabilityOf(3, false))
}
