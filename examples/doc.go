// Package examples holds example programs built on lrap, each in its own
// directory; examples_test.go builds and runs them. See README.md.
package examples
