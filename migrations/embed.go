// Package migrations embeds the SQL migrations of Airlock's two databases so
// each binary carries its own schema and `intake migrate` / `clinical migrate`
// need no files beside them.
//
// The roles the migrations create are cluster-wide and shared by every
// database on the server, so down migrations drop tables, never roles.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed intake/*.sql
var intakeFS embed.FS

//go:embed clinical/*.sql
var clinicalFS embed.FS

// Intake is the migration set of the public intake database.
func Intake() fs.FS { return sub(intakeFS, "intake") }

// Clinical is the migration set of the internal clinical database.
func Clinical() fs.FS { return sub(clinicalFS, "clinical") }

func sub(f embed.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embed patterns above guarantee the directory exists
	}
	return s
}
