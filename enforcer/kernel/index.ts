// The kernel side of the enforcer: the one module that talks to the native
// addon. Everything else imports from here.
export {
  ALL_HOOKS,
  CGROUP_HOOKS,
  HOOK_PROGRAMS,
  KernelPrograms,
  MAP_NAMES,
  MODE_OPTIONS,
  OBJECT_FILES,
  cgroupId,
  checkReplaceKernel,
  defaultMode,
  loadPrograms,
  objectVariant,
  removePins,
  unloadAll,
  type AttachMode,
  type ModeOption,
  type ObjectVariant,
  type ContainerLinks,
  type EventSubscription,
  type LoadOptions,
  type MapName,
} from './programs.js';
export { decodeEvent, type SabpfEvent } from './events.js';
export { addonPath } from './addon.js';
export { lockFolder, lockHolder, type FolderLock, type LockResult } from './folder-lock.js';
