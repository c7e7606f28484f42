// Package runtimeapi is the vocabulary of the AWS Lambda Runtime API
// (2018-06-01) and Extensions API (2020-01-01) as a proxy sees it: paths,
// header names and the error documents both APIs and lrap itself send.
//
// Every constant states what the protocol guarantees about it. Header names
// are given in Go's canonical form; matching is case-insensitive on the wire.
package runtimeapi

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Path prefixes of the API families. The runtime may call any of them through
// the address in AWS_LAMBDA_RUNTIME_API (aws-lambda-go registers an internal
// extension through it), so a proxy forwards every family, not only Runtime.
const (
	RuntimePrefix     = "/2018-06-01"
	ExtensionPrefix   = "/2020-01-01"
	LogsPrefix        = "/2020-08-15"
	TelemetryPrefix   = "/2022-07-01"
	CredentialsPrefix = "/2021-04-23"
)

// Runtime API paths.
const (
	// PathNext is the runtime's long poll for the next event. It has no
	// server timeout and may stay parked for the life of the environment.
	PathNext = RuntimePrefix + "/runtime/invocation/next"
	// PathInvocation is the prefix of /{id}/response and /{id}/error. The id
	// must be echoed byte-exact: the API checks it before reading the body.
	PathInvocation = RuntimePrefix + "/runtime/invocation/"
	// PathInitError reports a failed runtime init; accepted before the first
	// /next only (classic).
	PathInitError = RuntimePrefix + "/runtime/init/error"
	// PathRestoreNext is SnapStart's long poll: it blocks across the
	// snapshot and returns 200 with an empty body on restore.
	PathRestoreNext = RuntimePrefix + "/runtime/restore/next"
	// PathRestoreError reports a failed after-restore hook.
	PathRestoreError = RuntimePrefix + "/runtime/restore/error"
)

// Extensions API paths.
const (
	PathRegister       = ExtensionPrefix + "/extension/register"
	PathEventNext      = ExtensionPrefix + "/extension/event/next"
	PathExtInitError   = ExtensionPrefix + "/extension/init/error"
	PathExtExitError   = ExtensionPrefix + "/extension/exit/error"
	InvocationResponse = "/response"
	InvocationError    = "/error"
)

// Headers of /next responses (API to runtime). aws-lambda-go fails the
// invocation when DeadlineMs is missing or not an integer and when
// ClientContext or CognitoIdentity are present but not JSON, so a proxy never
// drops or reformats them.
const (
	HeaderRequestID       = "Lambda-Runtime-Aws-Request-Id"
	HeaderDeadlineMs      = "Lambda-Runtime-Deadline-Ms"
	HeaderFunctionArn     = "Lambda-Runtime-Invoked-Function-Arn"
	HeaderTraceID         = "Lambda-Runtime-Trace-Id"
	HeaderClientContext   = "Lambda-Runtime-Client-Context"
	HeaderCognitoIdentity = "Lambda-Runtime-Cognito-Identity"
	HeaderTenantID        = "Lambda-Runtime-Aws-Tenant-Id"
	// HeaderInvocationID is a per-attempt id seen only in newer Managed
	// Instances data planes; runtimes echo it and a mismatch gets 410.
	HeaderInvocationID = "Lambda-Runtime-Invocation-Id"
)

// Headers and trailers the runtime sends.
const (
	// HeaderResponseMode is absent for buffered responses and exactly
	// "streaming" for streamed ones; any other value, "buffered" included, is
	// rejected with 400 InvalidFunctionResponseMode.
	HeaderResponseMode = "Lambda-Runtime-Function-Response-Mode"
	// ResponseModeStreaming is the only accepted value of HeaderResponseMode.
	ResponseModeStreaming = "streaming"
	// HeaderErrorType is a header on /error, /init/error and /restore/error,
	// and a trailer on a streamed /response.
	HeaderErrorType = "Lambda-Runtime-Function-Error-Type"
	// HeaderErrorBody is a trailer on /response only: the error document,
	// base64 (standard encoding). Go receivers cap trailers near 4 KiB.
	HeaderErrorBody = "Lambda-Runtime-Function-Error-Body"
	// HeaderXRayErrorCause carries a JSON X-Ray cause on /error; clients cap
	// it just under 1 MiB, so header limits must stay above that.
	HeaderXRayErrorCause = "Lambda-Runtime-Function-Xray-Error-Cause"
)

// Extensions API headers.
const (
	HeaderExtensionName       = "Lambda-Extension-Name"
	HeaderExtensionIdentifier = "Lambda-Extension-Identifier"
	HeaderExtensionErrorType  = "Lambda-Extension-Function-Error-Type"
	HeaderExtensionFeature    = "Lambda-Extension-Accept-Feature"
)

// Extension event types. Managed Instances refuse INVOKE subscriptions for
// external extensions (403), so a proxy subscribes to SHUTDOWN only.
const (
	EventInvoke   = "INVOKE"
	EventShutdown = "SHUTDOWN"
)

// Error types lrap itself answers with. They use the LRAP. prefix so they can
// never be mistaken for an answer of the real API.
const (
	ErrorUpstreamUnavailable  = "LRAP.UpstreamUnavailable"
	ErrorInvalidRequestTarget = "LRAP.InvalidRequestTarget"
	ErrorShuttingDown         = "LRAP.ShuttingDown"
)

// Extension error types lrap reports through /extension/init/error and
// /extension/exit/error. Lambda shows them in the function's error.
const (
	ExtensionConfigInvalid = "Extension.ConfigInvalid"
	ExtensionListenFailed  = "Extension.ListenFailed"
	ExtensionFatal         = "Extension.Fatal"
)

// ErrorDocument is the error body the Runtime and Extensions APIs use:
// {"errorMessage":…,"errorType":…}. Field order matches the API's own JSON.
type ErrorDocument struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// Marshal renders the document the way the API does: encoding/json with a
// trailing newline.
func (d ErrorDocument) Marshal() []byte {
	b, _ := json.Marshal(d) // two strings: cannot fail
	return append(b, '\n')
}

// WriteError answers with an error document and the given status. It is used
// only for answers lrap makes itself; upstream answers are relayed verbatim.
func WriteError(w http.ResponseWriter, status int, errorType, message string) {
	body := ErrorDocument{ErrorMessage: message, ErrorType: errorType}.Marshal()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
