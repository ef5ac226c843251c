package eureka

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/regshift/regshift/registries"
)

// The metadata keys under which an instance carries what Eureka has no
// field for. A '.' never appears in a key registries.Validate accepts, so
// they cannot collide with an instance's own metadata; Resolve leaves them
// out of Instance.Metadata.
const (
	// MetaService is the service name as registered: Eureka upper-cases
	// app names, and Resolve gives the name back as the caller wrote it.
	MetaService = "regshift.service"
	// MetaTags holds the tags as a JSON array of strings.
	MetaTags = "regshift.tags"
	// MetaID is the instance id when the Eureka instanceId differs from it
	// (see instanceID).
	MetaID = "regshift.id"
	// MetaHealth is why an instance is DOWN: SetHealth's output.
	MetaHealth = "regshift.health"
)

// Eureka's instance statuses this package writes or reads.
const (
	statusUp   = "UP"
	statusDown = "DOWN"
)

// The action of an instance in a delta.
const (
	actionAdded    = "ADDED"
	actionModified = "MODIFIED"
	actionDeleted  = "DELETED"
)

// instanceInfo is Eureka's InstanceInfo as its JSON codec writes it, with
// the fields this package reads or writes.
type instanceInfo struct {
	InstanceID         string         `json:"instanceId,omitempty"`
	HostName           string         `json:"hostName"`
	App                string         `json:"app"`
	IPAddr             string         `json:"ipAddr"`
	Status             string         `json:"status"`
	OverriddenStatus   string         `json:"overriddenStatus,omitempty"`
	Port               port           `json:"port"`
	SecurePort         port           `json:"securePort"`
	DataCenterInfo     dataCenterInfo `json:"dataCenterInfo"`
	LeaseInfo          *leaseInfo     `json:"leaseInfo,omitempty"`
	Metadata           metadata       `json:"metadata"`
	VIPAddress         string         `json:"vipAddress,omitempty"`
	SecureVIPAddress   string         `json:"secureVipAddress,omitempty"`
	LastDirtyTimestamp jsonInt        `json:"lastDirtyTimestamp,omitempty"`
	ActionType         string         `json:"actionType,omitempty"`
}

type port struct {
	Number  int    `json:"$"`
	Enabled string `json:"@enabled"`
}

type dataCenterInfo struct {
	Class string `json:"@class"`
	Name  string `json:"name"`
}

type leaseInfo struct {
	RenewalIntervalInSecs int `json:"renewalIntervalInSecs"`
	DurationInSecs        int `json:"durationInSecs"`
}

// jsonInt is a number Eureka writes as a JSON string ("1764115200000") and
// reads as either.
type jsonInt int64

func (n jsonInt) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(strconv.FormatInt(int64(n), 10))), nil
}

func (n *jsonInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	*n = jsonInt(v)
	return err
}

// metadata is an instance's metadata. Eureka's values are strings, and it
// writes an empty map as {"@class": "java.util.Collections$EmptyMap"}:
// decoding keeps the string values of every key but "@class".
type metadata map[string]string

func (m *metadata) UnmarshalJSON(b []byte) error {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = nil
	for k, v := range raw {
		if s, ok := v.(string); ok && k != "@class" {
			if *m == nil {
				*m = metadata{}
			}
			(*m)[k] = s
		}
	}
	return nil
}

// application is one app of a fetch: its name (upper-case) and instances.
type application struct {
	Name      string         `json:"name"`
	Instances []instanceInfo `json:"instance"`
}

// applications is the body of a full or delta fetch.
type applications struct {
	VersionsDelta string        `json:"versions__delta"`
	AppsHashCode  string        `json:"apps__hashcode"`
	Apps          []application `json:"application"`
}

type applicationsBody struct {
	Applications applications `json:"applications"`
}

type applicationBody struct {
	Application application `json:"application"`
}

type instanceBody struct {
	Instance instanceInfo `json:"instance"`
}

// appName is the Eureka app of a service: its name upper-cased, as the
// server stores it (service names are ASCII).
func appName(service string) string { return strings.ToUpper(service) }

// instanceID is the Eureka instanceId of an instance id: the id itself,
// unless it holds a '\', which servers on Tomcat refuse in a request path
// (also escaped, %5C: 400) so that its lease could be neither renewed nor
// cancelled. Such an id is registered as "regshift-" and the hex of its
// SHA-256, with the id itself in MetaID.
func instanceID(id string) string {
	if !strings.Contains(id, `\`) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "regshift-" + hex.EncodeToString(sum[:20])
}

// health is what SetHealth asked of an instance: its status and the why.
type health struct {
	down   bool
	output string
}

// encode makes the InstanceInfo that registers inst: app = the service
// upper-cased, instanceId = instanceID(inst.ID), hostName and ipAddr =
// inst.Address, the port enabled, metadata = inst.Metadata plus MetaService
// (and MetaTags, MetaID, MetaHealth when there is something to carry),
// status UP or DOWN, and the lease's timing.
func encode(inst registries.Instance, h health, dirty int64, renewal, duration int) instanceInfo {
	md := make(metadata, len(inst.Metadata)+4)
	maps.Copy(md, inst.Metadata)
	md[MetaService] = inst.Service
	if len(inst.Tags) > 0 {
		b, _ := json.Marshal(inst.Tags) // strings always marshal
		md[MetaTags] = string(b)
	}
	id := instanceID(inst.ID)
	if id != inst.ID {
		md[MetaID] = inst.ID
	}
	status := statusUp
	if h.down {
		status = statusDown
		md[MetaHealth] = h.output
	}
	return instanceInfo{
		InstanceID: id, HostName: inst.Address, App: appName(inst.Service), IPAddr: inst.Address,
		Status:         status,
		Port:           port{Number: inst.Port, Enabled: "true"},
		SecurePort:     port{Number: 443, Enabled: "false"},
		DataCenterInfo: dataCenterInfo{Class: "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", Name: "MyOwn"},
		LeaseInfo:      &leaseInfo{RenewalIntervalInSecs: renewal, DurationInSecs: duration},
		Metadata:       md, VIPAddress: inst.Service, SecureVIPAddress: inst.Service,
		LastDirtyTimestamp: jsonInt(dirty),
	}
}

// serves reports whether in is an instance of service: one regshift
// registered under exactly that name, or one another Eureka client
// registered (no MetaService) in the app of that name, whatever its case.
func (in *instanceInfo) serves(service string) bool {
	if s, ok := in.Metadata[MetaService]; ok {
		return s == service
	}
	return strings.EqualFold(in.App, service)
}

// service is the name Services lists for in: MetaService, or for another
// client's instance its app lower-cased, as Spring Cloud's discovery client
// names services.
func (in *instanceInfo) service() string {
	if s, ok := in.Metadata[MetaService]; ok {
		return s
	}
	return strings.ToLower(in.App)
}

// key is the instance's Eureka identity within its app: instanceId, or the
// host name for clients that predate instanceId (as Eureka's getId does).
func (in *instanceInfo) key() string {
	if in.InstanceID != "" {
		return in.InstanceID
	}
	return in.HostName
}

// decode turns an instance of service (serves) into a registries.Instance:
// the id from MetaID or the instanceId, the address from hostName (ipAddr
// when empty), the port (the secure one when only it is enabled), the tags
// from MetaTags, and the metadata without regshift's keys and Eureka's
// "@class" (see metadata).
func (in *instanceInfo) decode(service string) registries.Instance {
	out := registries.Instance{Service: service, ID: in.key(), Address: in.HostName, Port: in.Port.Number}
	if id, ok := in.Metadata[MetaID]; ok {
		out.ID = id
	}
	if out.Address == "" {
		out.Address = in.IPAddr
	}
	if in.Port.Enabled == "false" && in.SecurePort.Enabled == "true" {
		out.Port = in.SecurePort.Number
	}
	if s, ok := in.Metadata[MetaTags]; ok {
		var tags []string
		if json.Unmarshal([]byte(s), &tags) == nil && len(tags) > 0 {
			out.Tags = tags
		}
	}
	for k, v := range in.Metadata {
		if k == MetaService || k == MetaTags || k == MetaID || k == MetaHealth {
			continue
		}
		if out.Metadata == nil {
			out.Metadata = map[string]string{}
		}
		out.Metadata[k] = v
	}
	return out
}

// upInstances returns the UP instances of service among insts, decoded and
// sorted by id.
func upInstances(insts []instanceInfo, service string) []registries.Instance {
	out := []registries.Instance{}
	for i := range insts {
		if insts[i].Status == statusUp && insts[i].serves(service) {
			out = append(out, insts[i].decode(service))
		}
	}
	registries.SortInstances(out)
	return out
}

// serviceNames returns the services of every instance in apps, sorted.
func serviceNames(apps []application) []string {
	set := map[string]bool{}
	for _, a := range apps {
		for i := range a.Instances {
			set[a.Instances[i].service()] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}
