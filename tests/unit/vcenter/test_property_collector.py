"""The property collector in memory: traversal, paging, filters and WaitForUpdatesEx change sets
(real versions; enter, modify, leave), driven by pyvmomi."""

from __future__ import annotations

import threading

import pytest
from pyVim.task import WaitForTask, WaitForTasks
from pyVmomi import vim, vmodl

from tests.helpers import wait_for

PC = vmodl.query.PropertyCollector


def vm_view_spec(content, paths, recursive=True):
    view = content.viewManager.CreateContainerView(
        content.rootFolder, [vim.VirtualMachine], recursive
    )
    spec = PC.FilterSpec(
        objectSet=[
            PC.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[
                    PC.TraversalSpec(name="traverseView", type=vim.view.ContainerView, path="view")
                ],
            )
        ],
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=paths)],
    )
    return view, spec


def folder_traversal_spec(content, paths):
    """The classic inventory walk: Folder.childEntity -> Datacenter.vmFolder -> ..."""
    to_dc_vm_folder = PC.TraversalSpec(
        name="dcToVmFolder",
        type=vim.Datacenter,
        path="vmFolder",
        skip=False,
        selectSet=[PC.SelectionSpec(name="folderToChild")],
    )
    folder_to_child = PC.TraversalSpec(
        name="folderToChild",
        type=vim.Folder,
        path="childEntity",
        skip=False,
        selectSet=[PC.SelectionSpec(name="folderToChild"), to_dc_vm_folder],
    )
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=content.rootFolder, skip=False, selectSet=[folder_to_child])],
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=paths)],
    )


def test_retrieve_properties_ex_through_a_container_view(si):
    content = si.RetrieveContent()
    _view, spec = vm_view_spec(content, ["name", "runtime.powerState", "config.hardware.numCPU"])
    result = content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions())
    rows = {o.obj._moId: {p.name: p.val for p in o.propSet} for o in result.objects}
    assert sorted(r["name"] for r in rows.values()) == ["lin-db-01", "lin-web-01", "win-app-01"]
    assert all(r["runtime.powerState"] == "poweredOn" for r in rows.values())
    assert {r["config.hardware.numCPU"] for r in rows.values()} == {2, 4}
    assert result.token is None


def test_traversal_specs_by_name_walk_folders(si):
    content = si.RetrieveContent()
    result = content.propertyCollector.RetrieveProperties(
        [folder_traversal_spec(content, ["name"])]
    )
    assert sorted(o.propSet[0].val for o in result) == ["lin-db-01", "lin-web-01", "win-app-01"]


def test_paging_by_max_objects(si):
    content = si.RetrieveContent()
    _view, spec = vm_view_spec(content, ["name"])
    pc = content.propertyCollector
    page = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=2))
    names = [o.propSet[0].val for o in page.objects]
    assert len(names) == 2 and page.token
    rest = pc.ContinueRetrievePropertiesEx(page.token)
    names += [o.propSet[0].val for o in rest.objects]
    assert rest.token is None and len(set(names)) == 3
    with pytest.raises(vmodl.fault.InvalidArgument):
        pc.ContinueRetrievePropertiesEx(page.token)


def test_an_invalid_path_is_invalid_property(si):
    content = si.RetrieveContent()
    _view, spec = vm_view_spec(content, ["runtime.nonsense"])
    with pytest.raises(vmodl.query.InvalidProperty):
        content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions())


def test_nothing_selected_is_an_empty_answer(si):
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Datastore], True)
    spec = PC.FilterSpec(
        objectSet=[
            PC.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[PC.TraversalSpec(type=vim.view.ContainerView, path="view")],
            )
        ],
        propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])],
    )
    assert content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions()) is None


def wait(pc, version, seconds=5):
    return pc.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=seconds))


def changes(update):
    out = []
    for fs in update.filterSet:
        for obj in fs.objectSet:
            out.append((str(obj.kind), obj.obj._moId, {c.name: c.val for c in obj.changeSet}))
    return out


def test_wait_for_updates_reports_enter_then_modify_with_increasing_versions(si):
    content = si.RetrieveContent()
    pc = content.propertyCollector
    _view, spec = vm_view_spec(content, ["name", "runtime.powerState"])
    pc.CreateFilter(spec, True)
    first = wait(pc, "")
    entered = changes(first)
    assert {kind for kind, _, _ in entered} == {"enter"} and len(entered) == 3
    assert wait(pc, first.version, seconds=0) is None  # nothing changed since
    vm = next(
        v for v in content.rootFolder.childEntity[0].vmFolder.childEntity if v.name == "lin-web-01"
    )
    WaitForTask(vm.PowerOffVM_Task())
    update = wait(pc, first.version)
    assert int(update.version) > int(first.version)
    modified = [c for c in changes(update) if c[1] == vm._moId]
    assert modified == [("modify", vm._moId, {"runtime.powerState": "poweredOff"})]


def test_a_stale_version_is_invalid_collector_version(si):
    content = si.RetrieveContent()
    pc = content.propertyCollector
    _view, spec = vm_view_spec(content, ["name"])
    pc.CreateFilter(spec, True)
    wait(pc, "")
    with pytest.raises(vmodl.query.InvalidCollectorVersion):
        wait(pc, "12345")


def test_a_blocked_wait_wakes_on_a_change(si, vcenter):
    content = si.RetrieveContent()
    pc = content.propertyCollector
    _view, spec = vm_view_spec(content, ["runtime.powerState"])
    pc.CreateFilter(spec, True)
    version = wait(pc, "").version
    vm = vcenter.vm_by_name("lin-db-01")
    result = {}
    waiter = threading.Thread(target=lambda: result.update(u=wait(pc, version, seconds=20)))
    waiter.start()
    with vcenter.registry.lock:
        from fakes.vcenter.vm_power import set_power

        set_power(vm, "poweredOff", clean=True)
    waiter.join(20)
    assert changes(result["u"]) == [("modify", vm.moid, {"runtime.powerState": "poweredOff"})]


def test_vms_created_and_destroyed_enter_and_leave_a_view_filter(si):
    content = si.RetrieveContent()
    pc = content.propertyCollector
    _view, spec = vm_view_spec(content, ["name"])
    pc.CreateFilter(spec, True)
    version = wait(pc, "").version
    dc = content.rootFolder.childEntity[0]
    pool = dc.hostFolder.childEntity[0].resourcePool
    config = vim.vm.ConfigSpec(
        name="new-vm",
        guestId="otherGuest64",
        numCPUs=1,
        memoryMB=256,
        files=vim.vm.FileInfo(vmPathName="[datastore1]"),
    )
    task = dc.vmFolder.CreateVM_Task(config, pool)
    WaitForTask(task)
    new_vm = task.info.result
    update = wait(pc, version)
    assert ("enter", new_vm._moId, {"name": "new-vm"}) in changes(update)
    WaitForTask(new_vm.Destroy_Task())
    update = wait(pc, update.version)
    assert ("leave", new_vm._moId, {}) in changes(update)


def test_wait_for_tasks_follows_several_tasks(si):
    content = si.RetrieveContent()
    vms = content.rootFolder.childEntity[0].vmFolder.childEntity
    tasks = [vm.PowerOffVM_Task() for vm in vms]
    WaitForTasks(tasks)
    assert {t.info.state for t in tasks} == {"success"}
    assert {vm.runtime.powerState for vm in vms} == {"poweredOff"}


def test_destroy_property_filter(si):
    content = si.RetrieveContent()
    pc = content.propertyCollector
    _view, spec = vm_view_spec(content, ["name"])
    pf = pc.CreateFilter(spec, True)
    assert [f._moId for f in pc.filter] == [pf._moId]
    pf.DestroyPropertyFilter()
    assert pc.filter == []
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        pf.DestroyPropertyFilter()


def test_session_objects_end_with_the_session(si, vcenter):
    content = si.RetrieveContent()
    view, spec = vm_view_spec(content, ["name"])
    content.propertyCollector.CreateFilter(spec, True)
    key = si.content.sessionManager.currentSession.key
    assert len(vcenter.registry.owned_by(key)) == 2
    content.sessionManager.Logout()
    wait_for(lambda: not vcenter.registry.owned_by(key), 5, message="session objects removed")
