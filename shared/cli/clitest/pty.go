// Package clitest helps tests run commands the way a person at a terminal
// does.
package clitest

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// OpenPTY opens a real pseudo-terminal pair: what a person's shell gives a
// command as its stderr. The test is skipped where there are none.
func OpenPTY(tb testing.TB) (master, slave *os.File) {
	tb.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		tb.Skipf("no pseudo-terminals here: %v", err)
	}
	tb.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		tb.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return m, s
}

// ReadUntil reads the terminal's master side until it shows want, and
// returns all it read; it fails the test after a minute without it.
func ReadUntil(tb testing.TB, master *os.File, want string) string {
	tb.Helper()
	master.SetReadDeadline(time.Now().Add(time.Minute))
	var got []byte
	for !strings.Contains(string(got), want) {
		b := make([]byte, 4096)
		n, err := master.Read(b)
		if err != nil {
			tb.Fatalf("read the terminal waiting for %q: %v (got %q)", want, err, got)
		}
		got = append(got, b[:n]...)
	}
	return string(got)
}
