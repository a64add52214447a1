package host_test

import "os/exec"

func execOutput(path string, args ...string) ([]byte, error) {
	return exec.Command(path, args...).Output()
}
