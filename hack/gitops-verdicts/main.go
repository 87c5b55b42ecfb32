// gitops-verdicts shows what the GitOps tools make of Kubernetes objects, computed by the code
// those tools run rather than by a re-implementation:
//
//   - kstatus (Flux's health checks, `kubectl wait`, kpt, cli-utils): sigs.k8s.io/cli-utils'
//     status.Compute.
//   - Argo CD: the health script, action discovery and action scripts of an argocd-cm
//     ConfigMap, run in gopher-lua the way Argo CD's util/lua runs them (see luavm.go).
//
// Usage:
//
//	gitops-verdicts verdicts ARGOCD_CM <objects.json
//	    one JSON line per object: {"object", "kstatus": {status, message}, "argocd": {status, message}}
//	gitops-verdicts discover ARGOCD_CM <object.json
//	    {"actions": [{"name", "disabled"}, ...]} from the discovery script, sorted by name
//	gitops-verdicts action ARGOCD_CM NAME <object.json
//	    {"object": the object the action returns, "patch": the JSON merge patch Argo CD sends}
//
// Objects are read as JSON: one object, a List (`kubectl get -o json`) or a JSON array.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	jsonpatch "github.com/evanphx/json-patch"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

const usage = `usage:
  gitops-verdicts verdicts ARGOCD_CM <objects.json
  gitops-verdicts discover ARGOCD_CM <object.json
  gitops-verdicts action ARGOCD_CM NAME <object.json`

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gitops-verdicts:", err)
		os.Exit(1)
	}
}

func run(args []string, in io.Reader, out io.Writer) error {
	if len(args) < 2 {
		return fmt.Errorf("%s", usage)
	}
	command, configMapPath := args[0], args[1]
	customizations, err := readCustomizations(configMapPath)
	if err != nil {
		return err
	}
	objects, err := readObjects(in)
	if err != nil {
		return err
	}
	encoder := json.NewEncoder(out)
	switch {
	case command == "verdicts" && len(args) == 2:
		for _, obj := range objects {
			if err := encoder.Encode(verdictsOf(customizations, obj)); err != nil {
				return err
			}
		}
		return nil
	case command == "discover" && len(args) == 2 && len(objects) == 1:
		actions, err := customizations.discover(objects[0])
		if err != nil {
			return err
		}
		return encoder.Encode(map[string]any{"actions": actions})
	case command == "action" && len(args) == 3 && len(objects) == 1:
		result, err := runAction(customizations, objects[0], args[2])
		if err != nil {
			return err
		}
		return encoder.Encode(result)
	}
	return fmt.Errorf("%s\n(discover and action take exactly one object)", usage)
}

func verdictsOf(customizations *customizations, obj *unstructured.Unstructured) map[string]any {
	return map[string]any{
		"object":  obj.GetNamespace() + "/" + obj.GetName(),
		"kstatus": kstatusVerdict(obj),
		"argocd":  customizations.health(obj),
	}
}

func kstatusVerdict(obj *unstructured.Unstructured) verdict {
	result, err := status.Compute(obj)
	if err != nil {
		// What kstatus's pollers report for an object they cannot read.
		return verdict{Status: string(status.UnknownStatus), Message: err.Error()}
	}
	return verdict{Status: string(result.Status), Message: result.Message}
}

type actionResult struct {
	Object map[string]any  `json:"object"`
	Patch  json.RawMessage `json:"patch"`
}

// runAction runs an action and, as Argo CD's server does with the object an action returns,
// turns it into a JSON merge patch against the live object.
func runAction(customizations *customizations, obj *unstructured.Unstructured, name string) (*actionResult, error) {
	changed, err := customizations.action(obj, name)
	if err != nil {
		return nil, err
	}
	live, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	edited, err := json.Marshal(changed)
	if err != nil {
		return nil, err
	}
	patch, err := jsonpatch.CreateMergePatch(live, edited)
	if err != nil {
		return nil, fmt.Errorf("merge patch of action %q: %w", name, err)
	}
	return &actionResult{Object: changed, Patch: patch}, nil
}

// readObjects reads objects the way the API server returns them (integers stay integers, as
// kstatus's generation checks need).
func readObjects(in io.Reader) ([]*unstructured.Unstructured, error) {
	data, err := io.ReadAll(in)
	if err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if json.Unmarshal(data, &raws) != nil {
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, fmt.Errorf("reading objects: %w", err)
		}
		raws = list.Items
		if raws == nil {
			raws = []json.RawMessage{data}
		}
	}
	objects := make([]*unstructured.Unstructured, 0, len(raws))
	for _, raw := range raws {
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("reading an object: %w", err)
		}
		objects = append(objects, obj)
	}
	return objects, nil
}

func sortedActions(actions []action) []action {
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
	return actions
}
