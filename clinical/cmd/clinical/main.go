// Command clinical is Airlock's internal staff application and its
// operations commands. See `clinical --help`.
package main

import "github.com/airlockhq/airlock/clinical"

func main() { clinical.Main() }
