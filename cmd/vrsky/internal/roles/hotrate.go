package roles

import (
	"fmt"
	"math"
	"os"
	"strconv"
)

// HotRatePerRunnerVar is the messages per second one runner is expected to
// take of one integration before the integration gets another runner
// (hotpath.Runner.HotRatePerRunner; unset: hotpath.DefaultHotRatePerRunner).
const HotRatePerRunnerVar = "VRSKY_HOT_RATE_PER_RUNNER"

// HotRatePerRunnerFromEnv reads HotRatePerRunnerVar: unset is 0, which
// means the default; anything but a positive number is an error.
func HotRatePerRunnerFromEnv() (float64, error) {
	s := os.Getenv(HotRatePerRunnerVar)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("%s: %q is not a positive number of messages per second", HotRatePerRunnerVar, s)
	}
	return v, nil
}
