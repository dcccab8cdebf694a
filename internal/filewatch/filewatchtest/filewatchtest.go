// Package filewatchtest helps test code built on filewatch: it changes a
// file as editors and tools do, and waits for the effect.
package filewatchtest

import (
	"os"
	"testing"
	"time"
)

// Timeout is how long Eventually waits.
const Timeout = 5 * time.Second

// Write writes content to path in place.
func Write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Replace writes content to a temporary file beside path and renames it
// over path, as editors and configuration tools do.
func Replace(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	Write(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Eventually polls cond until it holds, failing t after Timeout with
// "timed out waiting for <what>".
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
