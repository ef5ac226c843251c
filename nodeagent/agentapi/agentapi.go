// Package agentapi declares the JSON shapes of the node agent's local API:
// the answer to a resolve, the agent's status and the host's registrations.
// The agent (nodeagent) serves them and apps read them (nodeagent/client);
// it imports only the standard library and schema, so an app that resolves
// through the agent does not compile the agent's Kafka and registry clients.
package agentapi

import "github.com/regshift/regshift/schema"

// Endpoint is one instance of a service as the host's apps see it.
type Endpoint struct {
	ID      string            `json:"id"`
	Address string            `json:"address"`
	Port    int               `json:"port"`
	Tags    []string          `json:"tags,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
}

// Resolution is the answer for one service: the endpoints, which interface
// gave them, and whether the primary's answer was replaced by the
// fallback's (empty or below the parity threshold).
type Resolution struct {
	Service    string     `json:"service"`
	Endpoints  []Endpoint `json:"endpoints"`
	Via        string     `json:"via"`
	FellBack   bool       `json:"fellBack"`
	Index      uint64     `json:"index"`
	Error      string     `json:"error,omitempty"`
	ParityNote string     `json:"parityNote,omitempty"`
}

// Interface is one registry interface on the host: its phase
// (schema.InterfacePhase). An active interface is connected and in use: a
// provider is registered in it, a consumer resolves through it (first if it
// is the primary, else as the fallback). A standby interface is installed and
// may be connected but holds no registration and answers no resolve;
// re-activating it is instant. The agent's persisted state holds the same
// records.
type Interface struct {
	Name   string                `json:"name"`
	Phase  schema.InterfacePhase `json:"phase"`
	Digest string                `json:"digest,omitempty"` // sha256 of the installed package; empty for the built-in start interface
}

// Registration is one of this host's registrations as read back from an
// interface's registry.
type Registration struct {
	Interface  string `json:"interface"`
	Service    string `json:"service"`
	ID         string `json:"id"`
	Address    string `json:"address"`
	Port       int    `json:"port"`
	Registered bool   `json:"registered"`
	Error      string `json:"error,omitempty"`
}

// Status is the agent's view of itself, served at /v1/status.
type Status struct {
	Node           string         `json:"node"`
	Role           string         `json:"role"` // provider, consumer or both (nodeagent.Role)
	Primary        string         `json:"primary"`
	Fallback       string         `json:"fallback,omitempty"`
	Interfaces     []Interface    `json:"interfaces"`
	LastCommand    string         `json:"lastCommand,omitempty"`
	CommandsOffset int64          `json:"commandsOffset"`
	Epoch          uint64         `json:"epoch"`
	Registrations  []Registration `json:"registrations,omitempty"`
}

// Error is the body of every answer that is not 200 OK.
type Error struct {
	Message string `json:"error"`
}
