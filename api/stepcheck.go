package api

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
)

// stepBuildTimeout bounds building a spec's steps when it is created or
// changed (compiling its expressions and templates).
const stepBuildTimeout = 5 * time.Second

// stepBuilder builds the converters and filters of a spec as the runner
// will (dataplane.BuildChain), so that a config that would fail to build —
// an expression that does not compile, a template that does not parse —
// is refused when the spec is written instead of when it is deployed.
type stepBuilder struct {
	catalog *sdk.Catalog
	// tenancy completes the steps' Env with the tenant's secrets; nil
	// resolves none.
	tenancy sdk.Tenancy
	log     *slog.Logger
}

// check builds each step of s on its own and returns nil or a 422 that
// locates every step that does not build at body.steps[i].config, under
// prefix ("body" or "body.spec"). It answers 503 when the tenant's
// secrets cannot be read.
func (b stepBuilder) check(ctx context.Context, prefix, tenant string, s spec.Integration) error {
	ctx, cancel := context.WithTimeout(ctx, stepBuildTimeout)
	defer cancel()
	env := sdk.Env{Tenant: tenant, Integration: s.Name, Logger: slog.New(slog.DiscardHandler)}
	if b.tenancy != nil {
		if err := b.tenancy.Complete(ctx, &env); err != nil {
			b.log.ErrorContext(ctx, "operation failed", "operation", "build steps", "tenant", tenant, "error", err)
			return unavailable("the tenant's secrets cannot be read; retry later")
		}
	}
	var details []error
	for i, step := range s.Steps {
		name := fmt.Sprintf("steps[%d]", i)
		_, err := dataplane.BuildChain(ctx, b.catalog, []spec.Step{step}, func(string) sdk.Env {
			e := env
			e.Name = name
			return e
		})
		if err != nil {
			details = append(details, &huma.ErrorDetail{Location: prefix + "." + name + ".config",
				Message: fmt.Sprintf("%s (%s) does not build: %v", name, step.Connector, err)})
		}
	}
	if len(details) > 0 {
		return huma.Error422UnprocessableEntity(
			fmt.Sprintf("%d step(s) of the spec do not build; each is listed with its location", len(details)), details...)
	}
	return nil
}
