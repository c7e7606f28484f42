// Package sandbox runs a Lambda function under the AWS Lambda Runtime
// Interface Emulator (RIE) on this machine, optionally with lrap installed the
// way a layer installs it (/opt/extensions/lrap plus /opt/lrap-wrapper), and
// invokes it.
//
// The emulator only looks for extensions in /opt/extensions and, in Managed
// Instances mode, only for the runtime in /opt/bootstrap (or /var/task,
// /var/runtime). So each sandbox gets private mount and PID namespaces: a
// prepared directory is bind-mounted over /opt, the machine's /opt stays
// untouched, and every process the emulator starts (runtime, extensions, and
// whatever they spawn) dies with the namespace when the emulator's process is
// killed, so no test can leave processes behind.
//
// Only the standard library is used, so the package can live in the root
// module, which stays dependency-free.
//
// Start and the Sandbox type are Linux-only (namespaces); EnsureRIE and
// FindRIE work anywhere.
package sandbox
