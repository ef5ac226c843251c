package etcd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/regshift/regshift/registries"
)

// value is what an instance's key holds: the JSON of etcd's own
// naming/endpoints update ({"Op":0,"Addr":"host:port","Metadata":…}), the
// format gRPC's etcd resolver and endpoints.Manager read and write. Op is
// always 0 (add): a removed instance has no key.
type value struct {
	Op       uint8
	Addr     string
	Metadata json.RawMessage `json:",omitempty"`
}

// meta is the endpoint's Metadata as regshift writes it: what the address
// cannot carry.
type meta struct {
	Tags     []string          `json:"tags,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// encode returns the value of inst's key.
func encode(inst registries.Instance) ([]byte, error) {
	m, err := json.Marshal(meta{Tags: inst.Tags, Metadata: inst.Metadata})
	if err != nil {
		return nil, err
	}
	return json.Marshal(value{Addr: net.JoinHostPort(inst.Address, strconv.Itoa(inst.Port)), Metadata: m})
}

// decode reads the value of the key of service/id. An endpoint whose
// Metadata is not regshift's (another writer's: a string, another object,
// tags or metadata that registries.Validate refuses) is read without tags
// and metadata; one without a valid host:port address is an error.
func decode(service, id string, data []byte) (registries.Instance, error) {
	var v value
	if err := json.Unmarshal(data, &v); err != nil {
		return registries.Instance{}, fmt.Errorf("not an endpoint: %w", err)
	}
	host, port, err := net.SplitHostPort(v.Addr)
	if err != nil {
		return registries.Instance{}, fmt.Errorf("address %q: %w", v.Addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return registries.Instance{}, fmt.Errorf("address %q: port is not a number", v.Addr)
	}
	inst := registries.Instance{Service: service, ID: id, Address: host, Port: p}
	if err := registries.Validate(inst); err != nil {
		return registries.Instance{}, err
	}
	var m meta
	if len(v.Metadata) > 0 && json.Unmarshal(v.Metadata, &m) == nil {
		withMeta := inst
		withMeta.Tags, withMeta.Metadata = m.Tags, m.Metadata
		if registries.Validate(withMeta) == nil {
			return withMeta, nil
		}
	}
	return inst, nil
}

// The key layout: <prefix>/<service>/<id>.
func serviceKey(prefix, service string) string { return prefix + "/" + service + "/" }

func instanceKey(prefix, service, id string) string { return serviceKey(prefix, service) + id }

// splitKey returns the service and id of an instance key under prefix; an
// error for a key that is not <prefix>/<service>/<id> with a valid service
// and id.
func splitKey(prefix, key string) (service, id string, err error) {
	rest, ok := strings.CutPrefix(key, prefix+"/")
	if !ok {
		return "", "", errors.New("not under the prefix")
	}
	service, id, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", errors.New("not <prefix>/<service>/<id>")
	}
	if err := registries.ValidateService(service); err != nil {
		return "", "", err
	}
	if err := registries.ValidateID(id); err != nil {
		return "", "", err
	}
	return service, id, nil
}
