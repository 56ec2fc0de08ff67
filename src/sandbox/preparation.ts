/**
 * The facade's view of the host's first-run preparation (the snapshot, package environments, the
 * compile cache): adapters and library users subscribe here to show it.
 */
export { describePreparation, onPreparation, type PreparationEvent, type PreparationListener, type PreparationStep } from "../host/preparation-progress.js";
