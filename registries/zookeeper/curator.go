package zookeeper

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/regshift/regshift/registries"
)

// serviceInstance is Curator's JSON ServiceInstance as its
// JsonInstanceSerializer writes it in compatible mode (without the
// "enabled" field that Curator releases before CURATOR-275 refuse), which
// every Curator version reads. Enabled is read when a newer writer set it.
type serviceInstance struct {
	Name                string          `json:"name"`
	ID                  string          `json:"id"`
	Address             string          `json:"address"`
	Port                *int            `json:"port"`
	SSLPort             *int            `json:"sslPort"`
	Payload             json.RawMessage `json:"payload"`
	RegistrationTimeUTC int64           `json:"registrationTimeUTC"`
	ServiceType         string          `json:"serviceType"`
	URISpec             *uriSpec        `json:"uriSpec"`
	Enabled             *bool           `json:"enabled,omitempty"`
}

// uriSpec is Curator's UriSpec: literal and variable parts.
type uriSpec struct {
	Parts []uriPart `json:"parts"`
}

type uriPart struct {
	Value    string `json:"value"`
	Variable bool   `json:"variable"`
}

// defaultURISpec is "{scheme}://{address}:{port}", Spring Cloud Zookeeper's
// default.
var defaultURISpec = &uriSpec{Parts: []uriPart{
	{Value: "scheme", Variable: true}, {Value: "://"},
	{Value: "address", Variable: true}, {Value: ":"},
	{Value: "port", Variable: true},
}}

// payload is Spring Cloud Zookeeper's ZookeeperInstance plus regshift's tags.
type payload struct {
	Class    string            `json:"@class,omitempty"`
	ID       string            `json:"id,omitempty"`
	Name     string            `json:"name,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Tags     []string          `json:"tags,omitempty"`
}

// encode renders inst as the znode data Curator reads.
func encode(inst registries.Instance, payloadClass string, now time.Time) ([]byte, error) {
	p, err := json.Marshal(payload{Class: payloadClass, ID: inst.ID, Name: inst.Service,
		Metadata: inst.Metadata, Tags: inst.Tags})
	if err != nil {
		return nil, err
	}
	port := inst.Port
	return json.Marshal(serviceInstance{
		Name: inst.Service, ID: inst.ID, Address: inst.Address, Port: &port,
		Payload: p, RegistrationTimeUTC: now.UnixMilli(), ServiceType: "DYNAMIC", URISpec: defaultURISpec,
	})
}

// decode reads a ServiceInstance written by Curator or by encode. The path
// names the service and id (the layout is authoritative); ok is false for an
// instance Curator marked disabled. A payload that is not a
// ZookeeperInstance-shaped object leaves tags and metadata empty.
func decode(service, id string, data []byte) (inst registries.Instance, ok bool, err error) {
	var si serviceInstance
	if err := json.Unmarshal(data, &si); err != nil {
		return inst, false, fmt.Errorf("zookeeper: %s/%s is not a Curator ServiceInstance: %w", service, id, err)
	}
	inst = registries.Instance{Service: service, ID: id, Address: si.Address}
	switch {
	case si.Port != nil:
		inst.Port = *si.Port
	case si.SSLPort != nil:
		inst.Port = *si.SSLPort
	}
	var p struct {
		Metadata map[string]any `json:"metadata"`
		Tags     []string       `json:"tags"`
	}
	if len(si.Payload) > 0 && json.Unmarshal(si.Payload, &p) == nil {
		inst.Tags = p.Tags
		for k, v := range p.Metadata {
			if s, isString := v.(string); isString {
				if inst.Metadata == nil {
					inst.Metadata = map[string]string{}
				}
				inst.Metadata[k] = s
			}
		}
	}
	return inst, si.Enabled == nil || *si.Enabled, nil
}
