package builtin

import (
	"github.com/lrap/lrap/hooks/audit"
	"github.com/lrap/lrap/hooks/firewall"
	"github.com/lrap/lrap/hooks/metrics"
	"github.com/lrap/lrap/hooks/redact"
	"github.com/lrap/lrap/hooks/tracecontext"
)

// registry is every built-in hook, in documentation order: the order that
// LRAP_HOOKS's documentation recommends. Hooks run in LRAP_HOOKS's order,
// not this one.
var registry = []Builtin{
	{Name: firewall.Name, Build: firewall.Build, Settings: firewall.Settings},
	{Name: redact.Name, Build: redact.Build, Settings: redact.Settings},
	{Name: tracecontext.Name, Build: tracecontext.Build, Settings: tracecontext.Settings},
	{Name: audit.Name, Build: audit.Build, Settings: audit.Settings},
	{Name: metrics.Name, Build: metrics.Build, Settings: metrics.Settings},
}
