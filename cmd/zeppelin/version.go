package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// versionJSON is the build "zeppelin version" describes, from the binary's
// build information.
type versionJSON struct {
	// Module is the main module's path.
	Module string `json:"module"`
	// Version is the main module's version: a release (v1.2.0), a
	// pseudo-version stamped from the checkout it was built in, or
	// "(devel)".
	Version string `json:"version"`
	// Revision, Time and Modified describe the commit the binary was
	// built from (vcs.revision, vcs.time and vcs.modified), when known.
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	// Go is the Go version that built the binary; Platform its GOOS/GOARCH.
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// buildVersion describes the build from info (ok as debug.ReadBuildInfo
// returns it).
func buildVersion(info *debug.BuildInfo, ok bool) versionJSON {
	v := versionJSON{Module: "github.com/zeppelin-kv/zeppelin", Version: "unknown", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok || info == nil {
		return v
	}
	if info.Main.Path != "" {
		v.Module = info.Main.Path
	}
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	if info.GoVersion != "" {
		v.Go = info.GoVersion
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the one line "zeppelin --version" prints:
// "zeppelin (devel) (revision f49e08f1c2d3, 2025-06-01T10:00:00Z, modified) go1.26.8 linux/amd64".
func (v versionJSON) String() string {
	var vcs []string
	if v.Revision != "" {
		vcs = append(vcs, "revision "+v.Revision[:min(12, len(v.Revision))])
	}
	if v.Time != "" {
		vcs = append(vcs, v.Time)
	}
	if v.Modified {
		vcs = append(vcs, "modified")
	}
	s := "zeppelin " + v.Version
	if len(vcs) > 0 {
		s += " (" + strings.Join(vcs, ", ") + ")"
	}
	return s + " " + v.Go + " " + v.Platform
}

// currentVersion describes this binary.
func currentVersion() versionJSON {
	info, ok := debug.ReadBuildInfo()
	return buildVersion(info, ok)
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Long: `Print the version of this binary (as "zeppelin --version" does): the
module version it was built as ("(devel)" or a pseudo-version when built
from a checkout), the commit it was built from and whether the checkout had
changes, and the Go version and platform.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(_ *cobra.Command, _ []string) error {
			v := currentVersion()
			if asJSON {
				return writeJSON(stdout, v)
			}
			_, err := fmt.Fprintln(stdout, v)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print machine-readable JSON")
	return cmd
}
