package main

import (
	"os"
	"strings"
	"testing"
)

// The README's program is this package's main.go, line for line after the
// package clause, so that what a user pastes compiles.
func TestReadmeProgramIsExamplesReadme(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```go\npackage main\n")
	if !ok {
		t.Fatal("README.md has no ```go block starting with package main")
	}
	block, _, _ = strings.Cut(block, "```")
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(src), "package main\n")
	if block != body {
		t.Fatalf("README.md's program differs from examples/readme/main.go; copy main.go (from its package clause) into the README")
	}
}
