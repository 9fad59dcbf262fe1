/** The group key the project's own tests give their network transports (any 16+ bytes will do; never use a fixed key in production). */
export const TEST_KEY = 'understudy-test-group-key-0123456789'
