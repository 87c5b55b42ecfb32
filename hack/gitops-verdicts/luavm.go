package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/yaml"
)

// customizations are the Lua scripts an argocd-cm ConfigMap holds for each group and kind,
// under the keys Argo CD reads: resource.customizations.{health,actions}.<group>_<Kind>.
type customizations struct {
	data map[string]string
}

// actionsCustomization is the YAML value of resource.customizations.actions.<group>_<Kind>.
type actionsCustomization struct {
	Discovery   string `json:"discovery.lua"`
	Definitions []struct {
		Name   string `json:"name"`
		Action string `json:"action.lua"`
	} `json:"definitions"`
}

type action struct {
	Name     string `json:"name"`
	Disabled bool   `json:"disabled"`
}

func readCustomizations(path string) (*customizations, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var configMap struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(text, &configMap); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &customizations{data: configMap.Data}, nil
}

func groupKindKey(obj *unstructured.Unstructured) string {
	gvk := obj.GroupVersionKind()
	if gvk.Group == "" {
		return gvk.Kind
	}
	return gvk.Group + "_" + gvk.Kind
}

// health is Argo CD's verdict (gitops-engine's GetResourceHealth with a Lua override): an
// object being deleted is Progressing whatever its script says; a script that fails or returns
// an unknown status is Unknown.
func (c *customizations) health(obj *unstructured.Unstructured) verdict {
	if obj.GetDeletionTimestamp() != nil {
		return verdict{Status: "Progressing", Message: "Pending deletion"}
	}
	script, found := c.data["resource.customizations.health."+groupKindKey(obj)]
	if !found {
		return verdict{Status: "Unknown", Message: "no health script for " + groupKindKey(obj)}
	}
	result, err := runScript(obj, script)
	if err != nil {
		return verdict{Status: "Unknown", Message: err.Error()}
	}
	var health verdict
	if string(result) == "[]" { // an empty table: Argo CD reports no health
		return health
	}
	if err := json.Unmarshal(result, &health); err != nil {
		return verdict{Status: "Unknown", Message: err.Error()}
	}
	switch health.Status {
	case "Unknown", "Progressing", "Suspended", "Healthy", "Degraded", "Missing":
		return health
	}
	return verdict{Status: "Unknown", Message: "Lua returned an invalid health status"}
}

func (c *customizations) actions(obj *unstructured.Unstructured) (*actionsCustomization, error) {
	key := "resource.customizations.actions." + groupKindKey(obj)
	text, found := c.data[key]
	if !found {
		return nil, fmt.Errorf("no %s in the ConfigMap", key)
	}
	var actions actionsCustomization
	if err := yaml.Unmarshal([]byte(text), &actions); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &actions, nil
}

// discover runs the discovery script: a table from action name to {disabled = bool}; an action
// without `disabled` is enabled.
func (c *customizations) discover(obj *unstructured.Unstructured) ([]action, error) {
	actions, err := c.actions(obj)
	if err != nil {
		return nil, err
	}
	result, err := runScript(obj, actions.Discovery)
	if err != nil {
		return nil, err
	}
	found := []action{}
	if string(result) == "[]" {
		return found, nil
	}
	var table map[string]json.RawMessage
	if err := json.Unmarshal(result, &table); err != nil {
		return nil, fmt.Errorf("discovery returned %s: %w", result, err)
	}
	for name, value := range table {
		var settings struct {
			Disabled bool `json:"disabled"`
		}
		// An empty table ({}) encodes as [] and leaves the action enabled.
		_ = json.Unmarshal(value, &settings)
		found = append(found, action{Name: name, Disabled: settings.Disabled})
	}
	return sortedActions(found), nil
}

// action runs the named action's script and returns the object it gives back.
func (c *customizations) action(obj *unstructured.Unstructured, name string) (map[string]any, error) {
	actions, err := c.actions(obj)
	if err != nil {
		return nil, err
	}
	for _, definition := range actions.Definitions {
		if definition.Name != name {
			continue
		}
		result, err := runScript(obj, definition.Action)
		if err != nil {
			return nil, err
		}
		var changed map[string]any
		if err := json.Unmarshal(result, &changed); err != nil {
			return nil, fmt.Errorf("action %q returned %s, not an object: %w", name, result, err)
		}
		return restoreEmptyObjects(changed, obj.Object).(map[string]any), nil
	}
	return nil, fmt.Errorf("no action %q defined", name)
}

// runScript runs a script as Argo CD does for a script from argocd-cm (without
// resource.customizations.useOpenLibs): only the package, base and table libraries are open,
// plus a safe os (time and date) that a script reaches through require("os"); `obj` is a
// global; a script gets one second; the value it returns is encoded to JSON with gopher-json.
func runScript(obj *unstructured.Unstructured, script string) ([]byte, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, library := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(library.open), Protect: true}, lua.LString(library.name)); err != nil {
			return nil, err
		}
	}
	// Argo CD also registers its safe os functions under the table library's name, which leaves
	// no global `os`: scripts that use it work only through require("os"), so the same here.
	l.PreloadModule(lua.OsLibName, func(l *lua.LState) int {
		l.Push(l.SetFuncs(l.NewTable(), map[string]lua.LGFunction{"time": osTime, "date": osDate}))
		return 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj.Object))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	returned := l.Get(-1)
	if returned.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", returned.Type())
	}
	return luajson.Encode(returned)
}

// toLua converts an object read from JSON as Argo CD hands it to scripts: numbers, strings and
// booleans as such, arrays as sequences, maps as tables.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		sequence := l.CreateTable(len(v), 0)
		for _, item := range v {
			sequence.Append(toLua(l, item))
		}
		return sequence
	case map[string]any:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(l, item))
		}
		return table
	}
	return lua.LNil
}

// restoreEmptyObjects undoes what a round trip through Lua does to empty maps: gopher-json
// encodes every empty table as [], so where the live object had a map, an empty array becomes
// an empty map again, at any depth (Argo CD cleans an action's output the same way before
// patching; without it, `pause: {}` in a list of steps would come back as `pause: []`).
func restoreEmptyObjects(changed, live any) any {
	switch v := changed.(type) {
	case map[string]any:
		liveMap, ok := live.(map[string]any)
		if !ok {
			return v
		}
		for key, value := range v {
			v[key] = restoreEmptyObjects(value, liveMap[key])
		}
		return v
	case []any:
		if _, wasMap := live.(map[string]any); wasMap && len(v) == 0 {
			return map[string]any{}
		}
		liveList, _ := live.([]any)
		for i := range v {
			if i < len(liveList) {
				v[i] = restoreEmptyObjects(v[i], liveList[i])
			}
		}
		return v
	}
	return changed
}

// The safe os subset: os.time() and os.date(format [, time]) with "!" for UTC and the strftime
// conversions Argo CD supports.
func osTime(l *lua.LState) int {
	l.Push(lua.LNumber(time.Now().Unix()))
	return 1
}

var strftimeLayouts = map[byte]string{
	'a': "Mon", 'A': "Monday", 'b': "Jan", 'B': "January", 'c': "02 Jan 06 15:04 MST", 'd': "02",
	'F': "2006-01-02", 'H': "15", 'I': "03", 'm': "01", 'M': "04", 'p': "PM", 'S': "05",
	'X': "15:04:05", 'y': "06", 'Y': "2006", 'z': "-0700", 'Z': "MST",
}

func osDate(l *lua.LState) int {
	format := l.OptString(1, "%c")
	moment := time.Now()
	if strings.HasPrefix(format, "!") {
		format = format[1:]
		moment = moment.UTC()
	}
	if l.GetTop() >= 2 {
		moment = time.Unix(l.CheckInt64(2), 0)
	}
	var text strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			text.WriteByte(format[i])
			continue
		}
		i++
		if layout, known := strftimeLayouts[format[i]]; known {
			text.WriteString(moment.Format(layout))
		} else {
			text.WriteByte('%')
			text.WriteByte(format[i])
		}
	}
	l.Push(lua.LString(text.String()))
	return 1
}
