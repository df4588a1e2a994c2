// Point + label graphics shared by the map's markers (live entities, cameras): readable on a wall
// display, never hidden by the terrain or buildings.
const Cesium = window.Cesium;

/**
 * Point and label options for a Cesium Entity.
 * @param {{pixelSize: number, outline: string, labelOffset: number, maxDistance: number}} style
 */
export function markerGraphics({ pixelSize, outline, labelOffset, maxDistance }) {
  return {
    point: {
      pixelSize,
      outlineColor: Cesium.Color.fromCssColorString(outline),
      outlineWidth: 2,
      disableDepthTestDistance: Number.POSITIVE_INFINITY,
    },
    label: {
      font: "600 13px 'Noto Sans CJK SC', 'Segoe UI', sans-serif",
      fillColor: Cesium.Color.WHITE,
      outlineColor: Cesium.Color.BLACK,
      outlineWidth: 3,
      style: Cesium.LabelStyle.FILL_AND_OUTLINE,
      pixelOffset: new Cesium.Cartesian2(0, -labelOffset),
      verticalOrigin: Cesium.VerticalOrigin.BOTTOM,
      disableDepthTestDistance: Number.POSITIVE_INFINITY,
      distanceDisplayCondition: new Cesium.DistanceDisplayCondition(0, maxDistance),
    },
  };
}
