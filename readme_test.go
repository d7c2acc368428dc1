package zeppelin_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeSnippetCompiles builds the README's first Go snippet as the
// body of a program, so the front door's example keeps up with the API.
func TestReadmeSnippetCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```go\n")
	snippet, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no ```go block")
	}
	prog := `package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/zeppelin-kv/zeppelin"
	"github.com/zeppelin-kv/zeppelin/client"
)

var (
	_ = context.Background
	_ = fmt.Sprint
	_ = log.Fatal
	_ = time.Second
	_ = zeppelin.Start
	_ = client.New
)

func main() {
` + snippet + `}
`
	// Inside the module, so that its packages resolve; removed afterwards.
	dir, err := os.MkdirTemp("internal", "readme-snippet-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", os.DevNull, "./"+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README snippet does not compile: %v\n%s\n%s", err, out, prog)
	}
}
