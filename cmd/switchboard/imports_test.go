package main_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const modulePrefix = "github.com/switchboard-oss/switchboard/"

// TestImportRules keeps the architecture true: services and connectors
// import pkg, never each other; pkg imports none of them. Only
// cmd/switchboard imports them all.
func TestImportRules(t *testing.T) {
	root := filepath.Join("..", "..")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "node_modules" {
			return filepath.SkipDir // the console's npm packages
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		var own string // the import prefix a file may use besides pkg
		switch parts[0] {
		case "services", "connectors":
			own = modulePrefix + parts[0] + "/" + parts[1]
		case "pkg", "bench":
		default:
			return nil // cmd/switchboard may import everything
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, modulePrefix) {
				continue
			}
			inner := strings.TrimPrefix(p, modulePrefix)
			if strings.HasPrefix(inner, "pkg/") || inner == "pkg" {
				continue
			}
			if own != "" && (p == own || strings.HasPrefix(p, own+"/")) {
				continue
			}
			t.Errorf("%s imports %s: services and connectors import only pkg and themselves, pkg and bench import only pkg", rel, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("checked only %d files; is the repository root %s?", checked, root)
	}
}
