package kubernetes

import (
	"fmt"
	"strings"
)

// The paths inside an instance's pod.
const (
	configDir  = "/etc/nats"
	configFile = configDir + "/nats.conf"
	dataDir    = "/data"
	pidDir     = "/var/run/nats"
	pidFile    = pidDir + "/nats.pid"
)

// User is the platform's user on every instance.
const User = "vrsky"

// routeUser authenticates the servers of a cluster to each other.
const routeUser = "route"

// natsConfig is the nats-server configuration of an instance: one account
// (the global one) with the platform's user, JetStream on the volume,
// monitoring on MonitorPort and, for 3 servers, a cluster whose routes are
// the pods' stable DNS names. $POD_NAME is set by the pod from its own name.
func (p *Provisioner) natsConfig(n names, password, routePassword string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by VRSky for tenant %s; changes are overwritten.\n", n.tenant)
	b.WriteString("server_name: $POD_NAME\n")
	fmt.Fprintf(&b, "listen: \"0.0.0.0:%d\"\n", ClientPort)
	fmt.Fprintf(&b, "http: \"0.0.0.0:%d\"\n", MonitorPort)
	fmt.Fprintf(&b, "pid_file: %q\n", pidFile)
	b.WriteString("max_payload: 1MB\n")
	b.WriteString("lame_duck_duration: \"30s\"\n")
	b.WriteString("lame_duck_grace_period: \"10s\"\n")
	b.WriteString("authorization {\n")
	fmt.Fprintf(&b, "  user: %q\n", User)
	fmt.Fprintf(&b, "  password: %q\n", password)
	b.WriteString("}\n")
	b.WriteString("jetstream {\n")
	fmt.Fprintf(&b, "  store_dir: %q\n", dataDir)
	fmt.Fprintf(&b, "  max_file_store: %d\n", p.fileStoreBytes())
	fmt.Fprintf(&b, "  max_memory_store: %d\n", p.memoryStoreBytes())
	b.WriteString("}\n")
	if p.cfg.Replicas > 1 {
		b.WriteString("cluster {\n")
		fmt.Fprintf(&b, "  name: %q\n", n.base)
		fmt.Fprintf(&b, "  listen: \"0.0.0.0:%d\"\n", ClusterPort)
		b.WriteString("  no_advertise: true\n")
		b.WriteString("  authorization {\n")
		fmt.Fprintf(&b, "    user: %q\n", routeUser)
		fmt.Fprintf(&b, "    password: %q\n", routePassword)
		b.WriteString("  }\n")
		b.WriteString("  routes: [\n")
		for i := range int(p.cfg.Replicas) {
			fmt.Fprintf(&b, "    %q\n", fmt.Sprintf("nats://%s:%s@%s:%d", routeUser, routePassword, p.podHost(n, i), ClusterPort))
		}
		b.WriteString("  ]\n")
		b.WriteString("}\n")
	}
	return b.String()
}

// fileStoreBytes is 90 % of the volume: the rest for JetStream's metadata.
func (p *Provisioner) fileStoreBytes() int64 { return p.cfg.StorageSize.Value() / 10 * 9 }

// memoryStoreBytes is a quarter of the container's memory limit.
func (p *Provisioner) memoryStoreBytes() int64 {
	m := p.cfg.Resources.Limits.Memory()
	return m.Value() / 4
}

// svcSuffix ends every in-cluster host name: .<ns>.svc[.<domain>].
func (p *Provisioner) svcSuffix() string {
	s := "." + p.cfg.Namespace + ".svc"
	if p.cfg.ClusterDomain != "" {
		s += "." + p.cfg.ClusterDomain
	}
	return s
}

// podHost is the stable DNS name of the i-th server (through the headless Service).
func (p *Provisioner) podHost(n names, i int) string {
	return n.pod(i) + "." + n.headless + p.svcSuffix()
}
