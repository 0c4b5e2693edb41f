//go:build !vrsky_production

package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/roles"
)

// This build includes the development stack: `vrsky dev`, `vrsky bench`,
// `vrsky demo`, `--dev` on the roles and the dev stack's defaults for apply
// and integrations. The production build (-tags vrsky_production, see
// production.go) leaves them out.
const productionBuild = false

// devRoleConfig is the configuration that attaches a role to the vrsky dev
// running on dataDir.
func devRoleConfig(dataDir string) (roles.Config, error) {
	return devstack.RoleConfig(dataDir)
}

// devAPIURL is the API base URL of the vrsky dev running on dataDir.
func devAPIURL(dataDir string) (string, error) {
	ep, err := devstack.ReadEndpoints(dataDir)
	if err != nil {
		return "", err
	}
	return "http://" + ep.HTTP, nil
}

// devAdminKey is the admin key a vrsky dev keeps in dataDir.
func devAdminKey(dataDir string) (string, error) {
	admin, err := os.ReadFile(filepath.Join(dataDir, devstack.AdminKeyFile))
	if err != nil {
		return "", fmt.Errorf("no --key given and no dev stack admin key in %s: %w", dataDir, err)
	}
	return string(admin), nil
}
