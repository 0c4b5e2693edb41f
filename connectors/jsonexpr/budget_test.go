package jsonexpr_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/jsonexpr"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
)

// TestHostileExpressions plays expressions a tenant could write to burn the
// shared runner's CPU or memory: each must fail its own evaluation with an
// error naming the limit, quickly and without holding much memory.
func TestHostileExpressions(t *testing.T) {
	mib := strings.Repeat("x", 1<<20)
	fields := map[string]any{"s": strings.Repeat("x", 1000), "mib": mib, "items": make([]any, 10_000)}
	tests := []struct {
		name, source, want string
	}{
		// CPU: a billion iterations that allocate next to nothing.
		{"nested loops", "let r = 1..1000; sum(r, sum(r, sum(r, #)))", "budget"},
		{"nested loops, constant predicate", "let r = 1..1000; sum(r, sum(r, count(r, true)))", "budget"},
		{"loops over a message array", "sum(items, sum(items, 1))", "budget"},
		// CPU: few iterations, each working through a large string.
		{"string work in a loop", "sum(1..300000, len(upper(mib)))", "budget"},
		{"string scan in a loop", `sum(1..300000, indexOf(mib, "z"))`, "budget"},
		{"string comparison in a loop", `count(1..300000, mib contains "z" || mib == # || mib matches "z$")`, "budget"},
		{"reduce", "reduce(1..999999, #acc + 1, 0) + reduce(1..999999, #acc + 1, 0)", "budget"},
		// Memory: strings that double without a loop, or grow in one call.
		{"doubling in a loop", `reduce(1..40, #acc + #acc, s)`, "longer than"},
		{"doubling with let", "let a = mib + mib; let b = a + a; let c = b + b; let d = c + c; let e = d + d; len(e)", "longer than"},
		{"replace", `len(replace(replace(s, "", s), "", s))`, "longer than"},
		{"repeat of a large string", "len(repeat(mib, 1000000))", "longer than"},
		{"join", "len(join(map(1..20, mib)))", "longer than"},
		{"toJSON", "len(toJSON(map(1..20, mib)))", "longer than"},
		{"string", "len(string(map(1..20, mib)))", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := jsonexpr.Compile(tt.source)
			require.NoError(t, err)
			var runErr error
			start := time.Now()
			peak := sdktest.PeakHeap(func() {
				done := make(chan error, 1)
				go func() { _, err := p.Run(fields); done <- err }()
				select {
				case runErr = <-done:
				case <-time.After(20 * time.Second):
					t.Fatalf("%s: still running after 20s", tt.source)
				}
			})
			t.Logf("%s: %v, peak heap +%d MiB: %v", tt.source, time.Since(start).Round(time.Millisecond), peak>>20, runErr)
			require.Error(t, runErr)
			require.ErrorContains(t, runErr, tt.want)
			require.Less(t, peak, uint64(64<<20), "peak heap during the attack")
		})
	}
}

// TestBudgetLeavesNormalWorkAlone: loops over large but reasonable
// messages and strings up to the limit still evaluate.
func TestBudgetLeavesNormalWorkAlone(t *testing.T) {
	items := make([]any, 50_000)
	for i := range items {
		items[i] = map[string]any{"qty": float64(i % 7), "price": 2.5, "sku": fmt.Sprint("SKU-", i)}
	}
	fields := map[string]any{"items": items, "name": "Ann", "big": strings.Repeat("y", 500_000)}
	tests := []struct {
		source string
		want   any
	}{
		{"sum(map(items, #.qty * #.price))", 374992.5},
		{"len(filter(items, #.qty > 5))", 7142},
		{"len(join(map(items, #.sku), ','))", 488889},
		{"reduce(1..1000, #acc + #, 0)", 500500},
		{"len(big + big)", 1_000_000},
		{"len(repeat(name, 300000))", 900000},
		{`len(replace(big, "y", "zz"))`, 1_000_000},
		{"upper(name) + '!'", "ANN!"},
		{"all(items, # != nil) && any(items, #.qty == 6)", true},
		{"len(sortBy(items, -#.qty))", 50_000},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			p, err := jsonexpr.Compile(tt.source)
			require.NoError(t, err)
			got, err := p.Run(fields)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestCompileLimits(t *testing.T) {
	_, err := jsonexpr.Compile("a == '" + strings.Repeat("x", jsonexpr.MaxSourceLen) + "'")
	require.ErrorContains(t, err, "longer than")
	_, err = jsonexpr.Compile(strings.Repeat("a + ", 600) + "a")
	require.ErrorContains(t, err, "exceeds maximum allowed nodes")
	_, err = jsonexpr.Compile(strings.Repeat("a + ", 100) + "a")
	require.NoError(t, err)
}
