// Command transfer moves sealed submissions from intake to clinical. See
// `transfer --help`.
package main

import "github.com/airlockhq/airlock/transfer"

func main() { transfer.Main() }
