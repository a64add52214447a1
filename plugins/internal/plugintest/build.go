// Package plugintest builds plugin binaries for tests: real child processes,
// built once per test binary into a temporary directory.
package plugintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Module is the module path of the project.
const Module = "github.com/loyaltyhub/loyaltyhub"

// Build compiles each package (import paths under the module, such as
// Module+"/plugins/testdata/fakeplugin") into dir and returns the binaries
// by the last element of their package path.
func Build(dir string, pkgs ...string) (map[string]string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := make(map[string]string, len(pkgs))
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	args = append(args, pkgs...)
	cmd := exec.Command(goBin, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, b)
	}
	for _, p := range pkgs {
		name := p[strings.LastIndex(p, "/")+1:]
		out[name] = filepath.Join(dir, name)
	}
	return out, nil
}
