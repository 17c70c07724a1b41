// The `rollout` section of mlops.yaml, as typed by its JSON Schema in schemas/config/.

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface DeployConfig {}
