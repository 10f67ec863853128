// Command intake is Airlock's public-facing server: it validates and seals
// patient submissions and stores only ciphertext. See `intake --help`.
package main

import "github.com/airlockhq/airlock/intake"

func main() { intake.Main() }
